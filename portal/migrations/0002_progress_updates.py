from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('portal', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Delivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('portal.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('person', fields.ForeignKeyField('portal.Person', source_field='person_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('channel', fields.CharField(max_length=16)),
                ('address', fields.CharField(max_length=254)),
                ('language', fields.CharField(default='zh-CN', max_length=8)),
                ('kind', fields.CharField(default='update', max_length=16)),
                ('first_event_id', fields.BigIntField()),
                ('last_event_id', fields.BigIntField()),
                ('event_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('urgent', fields.BooleanField(default=False)),
                ('status', fields.CharField(default='pending', max_length=12)),
                ('attempts', fields.SmallIntField(default=0)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('error', fields.CharField(null=True, max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'delivery', 'app': 'portal', 'unique_together': (('person', 'channel', 'first_event_id', 'kind'),), 'indexes': [Index(fields=['channel', 'status', 'due_at']), Index(fields=['case_id', 'person_id', 'channel', 'status']), Index(fields=['case_id', 'first_event_id']), Index(fields=['address', 'status'])], 'pk_attr': 'id', 'table_description': 'One message to one person on one channel about one case: the events it tells (several'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Outbox',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('event', fields.ForeignKeyField('portal.CaseEvent', source_field='event_id', db_constraint=True, to_field='id', related_name='outbox', on_delete=OnDelete.CASCADE)),
                ('case_id', fields.BigIntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'outbox', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'A public event waiting to be turned into progress updates, written in the transaction'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Survey',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('portal.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='surveys', on_delete=OnDelete.CASCADE)),
                ('person', fields.ForeignKeyField('portal.Person', source_field='person_id', db_constraint=True, to_field='id', related_name='surveys', on_delete=OnDelete.CASCADE)),
                ('event_id', fields.BigIntField()),
                ('asked_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('reminded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'survey', 'app': 'portal', 'unique_together': (('case', 'person', 'event_id'),), 'indexes': [Index(fields=['reminded_at', 'asked_at'])], 'pk_attr': 'id', 'table_description': 'A reporter asked to rate a resolved case: when, and whether the one reminder went.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Unreachable',
            fields=[
                ('address', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=254)),
                ('channel', fields.CharField(max_length=16)),
                ('reason', fields.CharField(max_length=200)),
                ('since', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'unreachable', 'app': 'portal', 'pk_attr': 'address', 'table_description': 'An address that refused our messages for good (blocked the bot, unfollowed, bounced):'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Case',
            name='review_requested_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Person',
            name='updates_at_night',
            field=fields.BooleanField(default=False),
        ),
    ]
