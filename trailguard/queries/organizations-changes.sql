-- name: organizations-changes
-- title: AWS Organizations changes
-- description: Changes to the organization (accounts leaving or moved, SCPs detached or edited, OUs, handshakes), successful or not.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  eventtime,
  eventname,
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  recipientaccountid,
  coalesce(
    json_extract_scalar(requestparameters, '$.policyId'),
    json_extract_scalar(requestparameters, '$.accountId'),
    json_extract_scalar(requestparameters, '$.organizationalUnitId')
  ) AS subject,
  json_extract_scalar(requestparameters, '$.targetId') AS target,
  errorcode,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND eventsource = 'organizations.amazonaws.com'
  AND eventname IN (
    'LeaveOrganization', 'RemoveAccountFromOrganization', 'DeleteOrganization', 'DetachPolicy', 'AttachPolicy',
    'UpdatePolicy', 'DeletePolicy', 'CreatePolicy', 'DisablePolicyType', 'EnablePolicyType', 'MoveAccount',
    'CreateAccount', 'InviteAccountToOrganization', 'AcceptHandshake', 'DeclineHandshake',
    'CreateOrganizationalUnit', 'DeleteOrganizationalUnit', 'UpdateOrganizationalUnit',
    'RegisterDelegatedAdministrator', 'DeregisterDelegatedAdministrator', 'DisableAWSServiceAccess'
  )
ORDER BY eventtime
