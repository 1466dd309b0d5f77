-- name: public-exposure-changes
-- title: Public-exposure changes
-- description: Successful changes that can expose data or hosts: bucket ACLs, policies and Block Public Access, snapshot/AMI/RDS snapshot sharing, security-group ingress, Lambda permissions and function URLs.
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
      OR eventname LIKE 'UpdateFunctionUrlConfig%'))
  )
ORDER BY eventtime
