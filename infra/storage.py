"""The KMS key and the DynamoDB tables, built from ``handlers.tables`` definitions."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from handlers.tables import Table
from infra.config import KMS_AWS_OWNED, KMS_CREATE


@dataclass
class StorageArgs:
    tables: dict[str, Table]
    """Logical name -> definition (``Plugins.tables``)."""
    physical_names: dict[str, str]
    """Logical name -> DynamoDB table name."""
    kms_key: str
    """``create``, ``aws-owned`` or an existing key ARN."""
    deletion_protection: bool
    point_in_time_recovery: bool


def key_schema(hash_key: str, range_key: str | None) -> list[aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs]:
    keys = [(hash_key, "HASH"), (range_key, "RANGE")]
    return [aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=n, key_type=t) for n, t in keys if n]


class Storage(pulumi.ComponentResource):
    kms_key_arn: pulumi.Output[str] | None
    tables: dict[str, aws.dynamodb.Table]

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sendgrid-events:infra:Storage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        if args.kms_key == KMS_CREATE:
            key = aws.kms.Key(f"{name}-key", description=f"sendgrid-events {name}: tables, API key, queue",
                              enable_key_rotation=True, deletion_window_in_days=30, opts=child)
            aws.kms.Alias(f"{name}-key-alias", name=f"alias/{name}", target_key_id=key.key_id, opts=child)
            self.kms_key_arn = key.arn
        elif args.kms_key == KMS_AWS_OWNED:
            self.kms_key_arn = None
        else:
            self.kms_key_arn = pulumi.Output.from_input(args.kms_key)

        self.tables = {
            logical: self._table(logical, table, args)
            for logical, table in args.tables.items()
        }
        self.register_outputs({
            "kms_key_arn": self.kms_key_arn,
            "table_names": {n: t.name for n, t in self.tables.items()},
        })

    def _table(self, logical: str, table: Table, args: StorageArgs) -> aws.dynamodb.Table:
        return aws.dynamodb.Table(
            logical.replace("_", "-"),
            name=args.physical_names[logical],
            billing_mode="PAY_PER_REQUEST",
            hash_key=table.hash_key,
            range_key=table.range_key,
            attributes=[aws.dynamodb.TableAttributeArgs(name=n, type=table.attribute_type(n))
                        for n in table.key_attributes],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=i.name, key_schemas=key_schema(i.hash_key, i.range_key), projection_type="ALL")
                for i in table.indexes
            ] or None,
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=table.ttl_attribute, enabled=True)
            if table.ttl_attribute else None,
            stream_enabled=bool(table.stream_view_type),
            stream_view_type=table.stream_view_type,
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=self.kms_key_arn) if self.kms_key_arn is not None else None,
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(
                enabled=args.point_in_time_recovery),
            deletion_protection_enabled=args.deletion_protection,
            opts=pulumi.ResourceOptions(parent=self),
        )
