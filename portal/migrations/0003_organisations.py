from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from orgs.registry.models import OrgStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('portal', '0002_progress_updates')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Area',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('name_zh', fields.CharField(max_length=64)),
                ('name_en', fields.CharField(max_length=64)),
                ('kind', fields.CharField(max_length=8)),
                ('parent', fields.ForeignKeyField('portal.Area', source_field='parent_id', null=True, db_constraint=True, to_field='id', related_name='children', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'area', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'A street (街道/镇) or a grid (网格) inside a street.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Organisation',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=100)),
                ('uscc', fields.CharField(unique=True, max_length=18)),
                ('uscc_valid', fields.BooleanField()),
                ('uscc_override_by', fields.CharField(null=True, max_length=64)),
                ('uscc_override_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('uscc_override_reason', fields.TextField(null=True, unique=False)),
                ('address', fields.CharField(max_length=200)),
                ('contact_name', fields.CharField(max_length=50)),
                ('contact_phone', fields.CharField(max_length=32)),
                ('contact_email', fields.CharField(null=True, max_length=254)),
                ('service_types', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharEnumField(default=OrgStatus.PENDING, description='PENDING: pending\nVERIFIED: verified\nREJECTED: rejected\nSUSPENDED: suspended', enum_type=OrgStatus, max_length=12)),
                ('status_reason', fields.TextField(null=True, unique=False)),
                ('verified_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('verified_by', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'organisation', 'app': 'portal', 'indexes': [Index(fields=['status', 'id'])], 'pk_attr': 'id', 'table_description': 'A registered organisation. The contact phone and e-mail are private: others see them'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='DataAgreement',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organisation', fields.ForeignKeyField('portal.Organisation', source_field='organisation_id', db_constraint=True, to_field='id', related_name='agreements', on_delete=OnDelete.CASCADE)),
                ('purpose', fields.TextField(unique=False)),
                ('data_types', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('starts_on', fields.DateField()),
                ('ends_on', fields.DateField()),
                ('end_action', fields.CharField(max_length=8)),
                ('recorded_by', fields.CharField(max_length=64)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'data_agreement', 'app': 'portal', 'indexes': [Index(fields=['organisation_id', 'ends_on'])], 'pk_attr': 'id', 'table_description': "A data-processing agreement (数据处理协议): what residents' data an organisation may"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OrgArea',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organisation', fields.ForeignKeyField('portal.Organisation', source_field='organisation_id', db_constraint=True, to_field='id', related_name='areas', on_delete=OnDelete.CASCADE)),
                ('area', fields.ForeignKeyField('portal.Area', source_field='area_id', db_constraint=True, to_field='id', related_name='organisations', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'org_area', 'app': 'portal', 'unique_together': (('organisation', 'area'),), 'pk_attr': 'id', 'table_description': 'An area an organisation serves.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OrgEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organisation', fields.ForeignKeyField('portal.Organisation', source_field='organisation_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=24)),
                ('status_from', fields.CharField(null=True, max_length=12)),
                ('status_to', fields.CharField(null=True, max_length=12)),
                ('reason', fields.TextField(null=True, unique=False)),
                ('actor', fields.CharField(max_length=100)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'org_event', 'app': 'portal', 'indexes': [Index(fields=['organisation_id', 'id'])], 'pk_attr': 'id', 'table_description': 'The audit trail of an organisation: registered, verified, rejected, suspended,'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TrainingRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organisation', fields.ForeignKeyField('portal.Organisation', source_field='organisation_id', null=True, db_constraint=True, to_field='id', related_name='training', on_delete=OnDelete.CASCADE)),
                ('person', fields.ForeignKeyField('portal.Person', source_field='person_id', null=True, db_constraint=True, to_field='id', related_name='training', on_delete=OnDelete.CASCADE)),
                ('service_type', fields.CharField(max_length=24)),
                ('certificate_no', fields.CharField(max_length=64)),
                ('issued_by', fields.CharField(max_length=100)),
                ('issued_at', fields.DateField()),
                ('valid_until', fields.DateField()),
                ('recorded_by', fields.CharField(max_length=64)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'training_record', 'app': 'portal', 'indexes': [Index(fields=['organisation_id', 'service_type', 'valid_until']), Index(fields=['person_id', 'service_type', 'valid_until'])], 'pk_attr': 'id', 'table_description': 'A pre-job training certificate (岗前培训) for one service type, held by an organisation'},
            bases=['Model'],
        ),
    ]
