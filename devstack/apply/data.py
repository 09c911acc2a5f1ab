"""KMS, DynamoDB, SSM, SQS, SNS and S3 resources, made in the local AWS from the program's inputs."""

from __future__ import annotations

import json
import secrets

from devstack.apply import Applier, applies, autoname


@applies("aws:kms/key:Key")
def kms_key(aws: Applier, name: str, inputs: dict):
    kms = aws.client("kms")
    key = kms.create_key(Description=inputs.get("description", ""))["KeyMetadata"]
    if inputs.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyId"])
    return key["KeyId"], {"arn": key["Arn"], "keyId": key["KeyId"]}


@applies("aws:kms/alias:Alias")
def kms_alias(aws: Applier, name: str, inputs: dict):
    aws.client("kms").create_alias(AliasName=inputs["name"], TargetKeyId=inputs["targetKeyId"])
    return inputs["name"], {"arn": aws.arn("kms", inputs["name"])}


def _key_schema(pairs) -> list[dict]:
    return [{"AttributeName": n, "KeyType": t} for n, t in pairs if n]


@applies("aws:dynamodb/table:Table")
def dynamodb_table(aws: Applier, name: str, inputs: dict):
    ddb = aws.client("dynamodb")
    table_name = inputs.get("name") or autoname(name, 255)
    request = {
        "TableName": table_name,
        "BillingMode": inputs.get("billingMode", "PROVISIONED"),
        "KeySchema": _key_schema([(inputs.get("hashKey"), "HASH"), (inputs.get("rangeKey"), "RANGE")]),
        "AttributeDefinitions": [{"AttributeName": a["name"], "AttributeType": a["type"]}
                                 for a in inputs.get("attributes", [])],
        "DeletionProtectionEnabled": bool(inputs.get("deletionProtectionEnabled")),
    }
    indexes = inputs.get("globalSecondaryIndexes") or []
    if indexes:
        request["GlobalSecondaryIndexes"] = [{
            "IndexName": i["name"],
            "KeySchema": _key_schema([(k["attributeName"], k["keyType"]) for k in i["keySchemas"]]),
            "Projection": {"ProjectionType": i["projectionType"]},
        } for i in indexes]
    if inputs.get("streamEnabled"):
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": inputs["streamViewType"]}
    sse = inputs.get("serverSideEncryption") or {}
    if sse.get("enabled"):
        request["SSESpecification"] = {"Enabled": True, "SSEType": "KMS",
                                       **({"KMSMasterKeyId": sse["kmsKeyArn"]} if sse.get("kmsKeyArn") else {})}
    table = ddb.create_table(**request)["TableDescription"]
    ttl = inputs.get("ttl") or {}
    if ttl.get("enabled"):
        ddb.update_time_to_live(TableName=table_name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": ttl["attributeName"]})
    pitr = (inputs.get("pointInTimeRecovery") or {}).get("enabled")
    ddb.update_continuous_backups(TableName=table_name,
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": bool(pitr)})
    return table_name, {"name": table_name, "arn": table["TableArn"],
                        "streamArn": table.get("LatestStreamArn", ""), "streamLabel": table.get("LatestStreamLabel", "")}


@applies("aws:ssm/parameter:Parameter")
def ssm_parameter(aws: Applier, name: str, inputs: dict):
    request = {"Name": inputs["name"], "Value": inputs["value"], "Type": inputs["type"],
               "Description": inputs.get("description", "")}
    if inputs.get("keyId"):
        request["KeyId"] = inputs["keyId"]
    aws.client("ssm").put_parameter(**request)
    return inputs["name"], {"arn": aws.arn("ssm", "parameter/" + inputs["name"].lstrip("/"))}


@applies("aws:sqs/queue:Queue")
def sqs_queue(aws: Applier, name: str, inputs: dict):
    queue_name = inputs.get("name") or autoname(name, 80)
    attributes = {"MessageRetentionPeriod": str(inputs.get("messageRetentionSeconds", 345600))}
    fields = {"visibilityTimeoutSeconds": "VisibilityTimeout", "maxMessageSize": "MaximumMessageSize",
              "redrivePolicy": "RedrivePolicy"}
    attributes.update({key: str(inputs[field]) for field, key in fields.items() if inputs.get(field) is not None})
    if inputs.get("kmsMasterKeyId"):
        attributes["KmsMasterKeyId"] = inputs["kmsMasterKeyId"]
    if inputs.get("sqsManagedSseEnabled"):
        attributes["SqsManagedSseEnabled"] = "true"
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, {"name": queue_name, "url": url, "arn": arn}


@applies("aws:sns/topic:Topic")
def sns_topic(aws: Applier, name: str, inputs: dict):
    attributes = {"KmsMasterKeyId": inputs["kmsMasterKeyId"]} if inputs.get("kmsMasterKeyId") else {}
    arn = aws.client("sns").create_topic(Name=inputs.get("name") or autoname(name, 256),
                                         Attributes=attributes)["TopicArn"]
    return arn, {"arn": arn, "name": arn.rsplit(":", 1)[1]}


@applies("aws:sns/topicSubscription:TopicSubscription")
def sns_subscription(aws: Applier, name: str, inputs: dict):
    arn = aws.client("sns").subscribe(TopicArn=inputs["topic"], Protocol=inputs["protocol"],
                                      Endpoint=inputs["endpoint"], ReturnSubscriptionArn=True)["SubscriptionArn"]
    return arn, {"arn": arn}


@applies("aws:s3/bucket:Bucket")
def s3_bucket(aws: Applier, name: str, inputs: dict):
    bucket = inputs.get("bucket")
    if not bucket:  # Pulumi: the prefix and a unique suffix, or an autoname
        prefix = inputs.get("bucketPrefix")
        bucket = (prefix + secrets.token_hex(13))[:63] if prefix else autoname(name, 63).lower()
    aws.client("s3").create_bucket(Bucket=bucket)
    return bucket, {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}",
                    "bucketDomainName": f"{bucket}.s3.amazonaws.com"}


@applies("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
def s3_public_access_block(aws: Applier, name: str, inputs: dict):
    settings = {"BlockPublicAcls": "blockPublicAcls", "IgnorePublicAcls": "ignorePublicAcls",
                "BlockPublicPolicy": "blockPublicPolicy", "RestrictPublicBuckets": "restrictPublicBuckets"}
    aws.client("s3").put_public_access_block(Bucket=inputs["bucket"], PublicAccessBlockConfiguration={
        key: bool(inputs.get(field)) for key, field in settings.items()})
    return inputs["bucket"], {}


@applies("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
def s3_ownership(aws: Applier, name: str, inputs: dict):
    aws.client("s3").put_bucket_ownership_controls(Bucket=inputs["bucket"], OwnershipControls={
        "Rules": [{"ObjectOwnership": inputs["rule"]["objectOwnership"]}]})
    return inputs["bucket"], {}


@applies("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
def s3_encryption(aws: Applier, name: str, inputs: dict):
    rules = []
    for rule in inputs["rules"]:
        default = rule["applyServerSideEncryptionByDefault"]
        by_default = {"SSEAlgorithm": default["sseAlgorithm"]}
        if default.get("kmsMasterKeyId"):
            by_default["KMSMasterKeyID"] = default["kmsMasterKeyId"]
        rules.append({"ApplyServerSideEncryptionByDefault": by_default,
                      "BucketKeyEnabled": bool(rule.get("bucketKeyEnabled"))})
    aws.client("s3").put_bucket_encryption(Bucket=inputs["bucket"],
                                           ServerSideEncryptionConfiguration={"Rules": rules})
    return inputs["bucket"], {}


@applies("aws:s3/bucketPolicy:BucketPolicy")
def s3_policy(aws: Applier, name: str, inputs: dict):
    policy = inputs["policy"] if isinstance(inputs["policy"], str) else json.dumps(inputs["policy"])
    aws.client("s3").put_bucket_policy(Bucket=inputs["bucket"], Policy=policy)
    return inputs["bucket"], {}


@applies("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
def s3_lifecycle(aws: Applier, name: str, inputs: dict):
    rules = [{"ID": r["id"], "Status": r["status"], "Filter": {},
              **({"Expiration": {"Days": r["expiration"]["days"]}} if r.get("expiration") else {})}
             for r in inputs["rules"]]
    aws.client("s3").put_bucket_lifecycle_configuration(Bucket=inputs["bucket"],
                                                        LifecycleConfiguration={"Rules": rules})
    return inputs["bucket"], {}
