-- name: public-exposure-changes
-- title: Public-exposure changes
-- description: Successful changes that can expose data or hosts: bucket ACLs, policies and Block Public Access, snapshot/AMI/RDS snapshot sharing, security-group ingress, Lambda permissions and function URLs, and resource policies of KMS keys, SNS topics, SQS queues, ECR, secrets, Lambda layers, S3 access points, EFS, OpenSearch and Glacier.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  eventtime,
  eventsource,
  eventname,
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  recipientaccountid,
  awsregion,
  coalesce(
    json_extract_scalar(requestparameters, '$.bucketName'),
    json_extract_scalar(requestparameters, '$.snapshotId'),
    json_extract_scalar(requestparameters, '$.imageId'),
    json_extract_scalar(requestparameters, '$.groupId'),
    json_extract_scalar(requestparameters, '$.dBSnapshotIdentifier'),
    json_extract_scalar(requestparameters, '$.dBClusterSnapshotIdentifier'),
    json_extract_scalar(requestparameters, '$.functionName'),
    json_extract_scalar(requestparameters, '$.keyId'),
    json_extract_scalar(requestparameters, '$.topicArn'),
    json_extract_scalar(requestparameters, '$.queueUrl'),
    json_extract_scalar(requestparameters, '$.repositoryName'),
    json_extract_scalar(requestparameters, '$.secretId'),
    json_extract_scalar(requestparameters, '$.layerName'),
    json_extract_scalar(requestparameters, '$.fileSystemId'),
    json_extract_scalar(requestparameters, '$.domainName'),
    json_extract_scalar(requestparameters, '$.vaultName'),
    json_extract_scalar(requestparameters, '$.name'),
    json_extract_scalar(requestparameters, '$.accountId')
  ) AS resource,
  requestparameters,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND errorcode IS NULL
  AND (
    (eventsource = 's3.amazonaws.com' AND eventname IN (
      'PutBucketAcl', 'PutBucketPolicy', 'DeleteBucketPublicAccessBlock', 'PutBucketPublicAccessBlock', 'PutObjectAcl'))
    OR (eventsource = 's3control.amazonaws.com' AND eventname IN ('DeletePublicAccessBlock', 'PutPublicAccessBlock'))
    OR (eventsource = 'ec2.amazonaws.com' AND eventname IN (
      'ModifySnapshotAttribute', 'ModifyImageAttribute', 'AuthorizeSecurityGroupIngress',
      'ModifySecurityGroupRules', 'CreateNetworkAclEntry', 'ReplaceNetworkAclEntry', 'DisableImageBlockPublicAccess',
      'DisableSnapshotBlockPublicAccess'))
    OR (eventsource = 'rds.amazonaws.com' AND eventname IN (
      'ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute'))
    OR (eventsource = 'lambda.amazonaws.com' AND (
      eventname LIKE 'AddPermission%' OR eventname LIKE 'CreateFunctionUrlConfig%'
      OR eventname LIKE 'UpdateFunctionUrlConfig%' OR eventname LIKE 'AddLayerVersionPermission%'))
    OR (eventsource = 'kms.amazonaws.com' AND eventname IN ('PutKeyPolicy', 'CreateKey'))
    OR (eventsource = 'sns.amazonaws.com' AND eventname IN ('SetTopicAttributes', 'CreateTopic', 'AddPermission'))
    OR (eventsource = 'sqs.amazonaws.com' AND eventname IN ('SetQueueAttributes', 'CreateQueue', 'AddPermission'))
    OR (eventsource = 'ecr.amazonaws.com' AND eventname IN ('SetRepositoryPolicy', 'PutRegistryPolicy'))
    OR (eventsource = 'secretsmanager.amazonaws.com' AND eventname = 'PutResourcePolicy')
    OR (eventsource = 's3.amazonaws.com' AND eventname IN (
      'PutAccessPointPolicy', 'PutAccessPointPolicyForObjectLambda', 'PutMultiRegionAccessPointPolicy'))
    OR (eventsource = 'elasticfilesystem.amazonaws.com' AND eventname = 'PutFileSystemPolicy')
    OR (eventsource = 'es.amazonaws.com' AND eventname IN (
      'CreateDomain', 'UpdateDomainConfig', 'CreateElasticsearchDomain', 'UpdateElasticsearchDomainConfig'))
    OR (eventsource = 'glacier.amazonaws.com' AND eventname = 'SetVaultAccessPolicy')
  )
ORDER BY eventtime
