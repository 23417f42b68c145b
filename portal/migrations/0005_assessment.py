from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('portal', '0004_market')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BiddingSuspension',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organisation', fields.ForeignKeyField('portal.Organisation', source_field='organisation_id', db_constraint=True, to_field='id', related_name='suspensions', on_delete=OnDelete.CASCADE)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('reason', fields.TextField(unique=False)),
                ('assessments', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('trigger', fields.CharField(max_length=64)),
                ('status', fields.CharField(default='active', max_length=10)),
            ],
            options={'table': 'bidding_suspension', 'app': 'portal', 'unique_together': (('organisation', 'trigger'),), 'indexes': [Index(fields=['organisation_id', 'status', 'ends_at'])], 'pk_attr': 'id', 'table_description': 'Elimination (淘汰): the organisation may not bid or claim from starts_at to ends_at.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CaseAssignment',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('portal.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='org_assignments', on_delete=OnDelete.CASCADE)),
                ('organisation', fields.ForeignKeyField('portal.Organisation', source_field='organisation_id', db_constraint=True, to_field='id', related_name='case_assignments', on_delete=OnDelete.RESTRICT)),
                ('contract', fields.ForeignKeyField('portal.Contract', source_field='contract_id', null=True, db_constraint=True, to_field='id', related_name='case_assignments', on_delete=OnDelete.SET_NULL)),
                ('assigned_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('assigned_by', fields.CharField(max_length=100)),
                ('active_key', fields.BigIntField(null=True, unique=True)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'case_assignment', 'app': 'portal', 'indexes': [Index(fields=['organisation_id', 'assigned_at'])], 'pk_attr': 'id', 'table_description': 'A case an organisation works (under a contract, when there is one). One active'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Complaint',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organisation', fields.ForeignKeyField('portal.Organisation', source_field='organisation_id', db_constraint=True, to_field='id', related_name='complaints', on_delete=OnDelete.CASCADE)),
                ('case', fields.ForeignKeyField('portal.Case', source_field='case_id', null=True, db_constraint=True, to_field='id', related_name='org_complaints', on_delete=OnDelete.SET_NULL)),
                ('text', fields.TextField(unique=False)),
                ('recorded_by', fields.CharField(max_length=100)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'complaint', 'app': 'portal', 'indexes': [Index(fields=['organisation_id', 'recorded_at'])], 'pk_attr': 'id', 'table_description': "A complaint about an organisation's work, recorded by staff."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='IndicatorSet',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=60)),
                ('version', fields.IntField()),
                ('status', fields.CharField(default='draft', max_length=8)),
                ('bands', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('missing', fields.CharField(default='rescale', max_length=8)),
                ('consequences', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('elimination', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_by', fields.CharField(max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('activated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('activated_by', fields.CharField(null=True, max_length=100)),
            ],
            options={'table': 'indicator_set', 'app': 'portal', 'unique_together': (('name', 'version'),), 'pk_attr': 'id', 'table_description': 'A versioned set of indicators with its grade bands, consequences and elimination rule.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Indicator',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('set', fields.ForeignKeyField('portal.IndicatorSet', source_field='set_id', db_constraint=True, to_field='id', related_name='indicators', on_delete=OnDelete.CASCADE)),
                ('position', fields.SmallIntField()),
                ('key', fields.CharField(max_length=32)),
                ('weight', fields.DecimalField(max_digits=5, decimal_places=2)),
                ('params', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'indicator', 'app': 'portal', 'unique_together': (('set', 'position'),), 'pk_attr': 'id', 'table_description': 'One indicator of a set: its key (how it is measured), weight in points and parameters.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OrgDocument',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organisation', fields.ForeignKeyField('portal.Organisation', source_field='organisation_id', db_constraint=True, to_field='id', related_name='documents', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=24)),
                ('filename', fields.CharField(max_length=120)),
                ('path', fields.CharField(max_length=200)),
                ('content_type', fields.CharField(max_length=64)),
                ('size', fields.IntField()),
                ('sha256', fields.CharField(max_length=64)),
                ('uploaded_by', fields.CharField(max_length=100)),
                ('uploaded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'org_document', 'app': 'portal', 'indexes': [Index(fields=['organisation_id', 'id'])], 'pk_attr': 'id', 'table_description': 'A document of an organisation (登记证书, 章程...): kept on disk, shown to staff only.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Period',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('starts_on', fields.DateField()),
                ('ends_on', fields.DateField()),
                ('indicator_set', fields.ForeignKeyField('portal.IndicatorSet', source_field='indicator_set_id', db_constraint=True, to_field='id', related_name='periods', on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharField(default='computed', max_length=10)),
                ('computed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('published_by', fields.CharField(null=True, max_length=100)),
            ],
            options={'table': 'assessment_period', 'app': 'portal', 'unique_together': (('starts_on', 'ends_on'),), 'pk_attr': 'id', 'table_description': 'An assessment period (a Shanghai calendar month by default) and the set it used.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Assessment',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('period', fields.ForeignKeyField('portal.Period', source_field='period_id', db_constraint=True, to_field='id', related_name='assessments', on_delete=OnDelete.CASCADE)),
                ('organisation', fields.ForeignKeyField('portal.Organisation', source_field='organisation_id', db_constraint=True, to_field='id', related_name='assessments', on_delete=OnDelete.CASCADE)),
                ('score', fields.DecimalField(max_digits=5, decimal_places=2)),
                ('grade', fields.CharField(max_length=4)),
                ('breakdown', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('corrected_score', fields.DecimalField(null=True, max_digits=5, decimal_places=2)),
                ('corrected_grade', fields.CharField(null=True, max_length=4)),
                ('correction_reason', fields.TextField(null=True, unique=False)),
                ('computed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'assessment', 'app': 'portal', 'unique_together': (('period', 'organisation'),), 'pk_attr': 'id', 'table_description': "One organisation's score and grade for a period, with how it was computed."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Appeal',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organisation', fields.ForeignKeyField('portal.Organisation', source_field='organisation_id', db_constraint=True, to_field='id', related_name='appeals', on_delete=OnDelete.CASCADE)),
                ('assessment', fields.ForeignKeyField('portal.Assessment', source_field='assessment_id', null=True, db_constraint=True, to_field='id', related_name='appeals', on_delete=OnDelete.CASCADE)),
                ('suspension', fields.ForeignKeyField('portal.BiddingSuspension', source_field='suspension_id', null=True, db_constraint=True, to_field='id', related_name='appeals', on_delete=OnDelete.CASCADE)),
                ('text', fields.TextField(unique=False)),
                ('submitted_by', fields.ForeignKeyField('portal.Account', source_field='submitted_by_id', db_constraint=True, to_field='id', related_name='appeals', on_delete=OnDelete.RESTRICT)),
                ('submitted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('decision', fields.CharField(null=True, max_length=12)),
                ('decided_by', fields.CharField(null=True, max_length=100)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reason', fields.TextField(null=True, unique=False)),
                ('active_key', fields.CharField(null=True, unique=True, max_length=40)),
            ],
            options={'table': 'appeal', 'app': 'portal', 'indexes': [Index(fields=['decision', 'submitted_at'])], 'pk_attr': 'id', 'table_description': "An organisation's appeal against an assessment or a suspension, and the decision."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ConsequenceRecord',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('assessment', fields.ForeignKeyField('portal.Assessment', source_field='assessment_id', db_constraint=True, to_field='id', related_name='consequences', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=32)),
                ('value', fields.DecimalField(null=True, max_digits=8, decimal_places=2)),
                ('status', fields.CharField(default='proposed', max_length=10)),
                ('decided_by', fields.CharField(null=True, max_length=100)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('note', fields.TextField(null=True, unique=False)),
            ],
            options={'table': 'consequence_record', 'app': 'portal', 'pk_attr': 'id', 'table_description': 'A reward or penalty a grade calls for: proposed at publishing, then applied or waived.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Membership',
            name='reports_for_org',
            field=fields.BooleanField(default=False),
        ),
    ]
