-- name: iam-privilege-changes
-- title: IAM privilege changes
-- description: Successful IAM changes that grant or widen access: policies attached or written, policy versions, group membership, trust policies, users, roles, login profiles.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  eventtime,
  eventname,
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  recipientaccountid,
  coalesce(
    json_extract_scalar(requestparameters, '$.userName'),
    json_extract_scalar(requestparameters, '$.roleName'),
    json_extract_scalar(requestparameters, '$.groupName')
  ) AS target_principal,
  coalesce(
    json_extract_scalar(requestparameters, '$.policyArn'),
    json_extract_scalar(requestparameters, '$.policyName')
  ) AS policy,
  sourceipaddress,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND eventsource = 'iam.amazonaws.com'
  AND errorcode IS NULL
  AND eventname IN (
    'AttachUserPolicy', 'AttachGroupPolicy', 'AttachRolePolicy',
    'PutUserPolicy', 'PutGroupPolicy', 'PutRolePolicy',
    'CreatePolicyVersion', 'SetDefaultPolicyVersion', 'CreatePolicy',
    'AddUserToGroup', 'UpdateAssumeRolePolicy', 'CreateUser', 'CreateRole',
    'CreateLoginProfile', 'UpdateLoginProfile', 'PutUserPermissionsBoundary', 'DeleteUserPermissionsBoundary',
    'PutRolePermissionsBoundary', 'DeleteRolePermissionsBoundary'
  )
ORDER BY eventtime
