-- name: detective-controls-disabled
-- title: GuardDuty, Config, Security Hub and other detective controls disabled
-- description: Calls that switch off or weaken detection: GuardDuty detectors and membership, Config recorders and channels, Security Hub, Access Analyzer, VPC flow logs, Resolver query logging, log groups, EBS default encryption.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  eventtime,
  eventsource,
  eventname,
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  recipientaccountid,
  awsregion,
  requestparameters,
  errorcode,
  eventid
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND (
    (eventsource = 'guardduty.amazonaws.com' AND (
      eventname IN ('DeleteDetector', 'DisassociateFromMasterAccount', 'DisassociateFromAdministratorAccount',
                    'DeleteMembers', 'DisassociateMembers', 'StopMonitoringMembers', 'DeletePublishingDestination')
      OR (eventname = 'UpdateDetector' AND json_extract_scalar(requestparameters, '$.enable') = 'false')))
    OR (eventsource = 'config.amazonaws.com' AND eventname IN (
      'StopConfigurationRecorder', 'DeleteConfigurationRecorder', 'DeleteDeliveryChannel', 'DeleteConfigRule'))
    OR (eventsource = 'securityhub.amazonaws.com' AND eventname IN (
      'DisableSecurityHub', 'BatchDisableStandards', 'DisassociateFromAdministratorAccount',
      'DisassociateFromMasterAccount', 'DeleteMembers', 'DisableImportFindingsForProduct'))
    OR (eventsource = 'access-analyzer.amazonaws.com' AND eventname = 'DeleteAnalyzer')
    OR (eventsource = 'ec2.amazonaws.com' AND eventname IN ('DeleteFlowLogs', 'DisableEbsEncryptionByDefault'))
    OR (eventsource = 'route53resolver.amazonaws.com' AND eventname IN (
      'DeleteResolverQueryLogConfig', 'DisassociateResolverQueryLogConfig'))
    OR (eventsource = 'logs.amazonaws.com' AND eventname IN (
      'DeleteLogGroup', 'DeleteLogStream', 'DeleteSubscriptionFilter', 'PutRetentionPolicy'))
  )
ORDER BY eventtime
