-- name: detective-controls-disabled
-- title: GuardDuty, Config, Security Hub and other detective controls disabled
-- description: Calls that switch off, narrow or suppress detection, or destroy backups: GuardDuty detectors, protection plans, membership and findings; Config recorders, rules and packs; Security Hub findings, controls and membership; Access Analyzer, Macie, Inspector, WAF, EventBridge rules, CloudWatch alarms, Bedrock logging; VPC flow logs, Resolver query logging and DNS Firewall, log groups; EBS default encryption and key; AWS Backup and RDS backups; KMS key material.
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
                    'DeleteMembers', 'DisassociateMembers', 'StopMonitoringMembers', 'DeletePublishingDestination',
                    'DeclineInvitations', 'DeleteInvitations', 'ArchiveFindings', 'UpdateMemberDetectors',
                    'UpdateOrganizationConfiguration')
      OR (eventname = 'UpdateDetector' AND (json_extract_scalar(requestparameters, '$.enable') = 'false'
          OR requestparameters LIKE '%"features"%' OR requestparameters LIKE '%"dataSources"%'))))
    OR (eventsource = 'config.amazonaws.com' AND eventname IN (
      'StopConfigurationRecorder', 'DeleteConfigurationRecorder', 'DeleteDeliveryChannel', 'DeleteConfigRule',
      'PutConfigurationRecorder', 'DisassociateResourceTypes', 'DeleteConformancePack',
      'DeleteOrganizationConformancePack', 'DeleteOrganizationConfigRule', 'DeleteRemediationConfiguration',
      'DeleteConfigurationAggregator'))
    OR (eventsource = 'securityhub.amazonaws.com' AND eventname IN (
      'DisableSecurityHub', 'BatchDisableStandards', 'DisassociateFromAdministratorAccount',
      'DisassociateFromMasterAccount', 'DeleteMembers', 'DisableImportFindingsForProduct', 'DisassociateMembers',
      'BatchUpdateFindings', 'UpdateFindings', 'CreateAutomationRule', 'BatchUpdateAutomationRules',
      'UpdateStandardsControl', 'BatchUpdateStandardsControlAssociations'))
    OR (eventsource = 'access-analyzer.amazonaws.com' AND eventname IN (
      'DeleteAnalyzer', 'CreateArchiveRule', 'UpdateArchiveRule'))
    OR (eventsource = 'macie2.amazonaws.com' AND eventname IN (
      'DisableMacie', 'UpdateMacieSession', 'UpdateClassificationJob', 'CreateFindingsFilter', 'UpdateFindingsFilter',
      'DisassociateFromAdministratorAccount', 'DisassociateFromMasterAccount', 'DisassociateMember', 'DeleteMember'))
    OR (eventsource = 'inspector2.amazonaws.com' AND eventname = 'Disable')
    OR (eventsource IN ('wafv2.amazonaws.com', 'waf.amazonaws.com', 'waf-regional.amazonaws.com') AND eventname IN (
      'DeleteLoggingConfiguration', 'PutLoggingConfiguration', 'DeleteWebACL', 'DeleteRuleGroup', 'DeleteRule'))
    OR (eventsource = 'events.amazonaws.com' AND eventname IN ('DisableRule', 'DeleteRule'))
    OR (eventsource = 'monitoring.amazonaws.com' AND eventname IN ('DeleteAlarms', 'DisableAlarmActions'))
    OR (eventsource = 'bedrock.amazonaws.com' AND eventname = 'DeleteModelInvocationLoggingConfiguration')
    OR (eventsource = 'ec2.amazonaws.com' AND eventname IN (
      'DeleteFlowLogs', 'DisableEbsEncryptionByDefault', 'ModifyEbsDefaultKmsKeyId'))
    OR (eventsource = 'route53resolver.amazonaws.com' AND eventname IN (
      'DeleteResolverQueryLogConfig', 'DisassociateResolverQueryLogConfig', 'DisassociateFirewallRuleGroup',
      'DeleteFirewallRuleGroup', 'UpdateFirewallConfig'))
    OR (eventsource = 'logs.amazonaws.com' AND eventname IN (
      'DeleteLogGroup', 'DeleteLogStream', 'DeleteSubscriptionFilter', 'PutRetentionPolicy'))
    OR (eventsource = 'backup.amazonaws.com' AND eventname IN (
      'DeleteRecoveryPoint', 'DeleteBackupVault', 'DeleteBackupVaultLockConfiguration', 'DeleteBackupPlan',
      'DeleteBackupSelection', 'PutBackupVaultAccessPolicy'))
    OR (eventsource = 'rds.amazonaws.com' AND (
      eventname IN ('DeleteDBSnapshot', 'DeleteDBClusterSnapshot', 'DeleteDBInstanceAutomatedBackup',
                    'DeleteDBClusterAutomatedBackup', 'StopActivityStream')
      OR (eventname IN ('DeleteDBInstance', 'DeleteDBCluster')
          AND json_extract_scalar(requestparameters, '$.skipFinalSnapshot') = 'true')
      OR (eventname IN ('ModifyDBInstance', 'ModifyDBCluster')
          AND (json_extract_scalar(requestparameters, '$.deletionProtection') = 'false'
               OR json_extract_scalar(requestparameters, '$.backupRetentionPeriod') = '0'))))
    OR (eventsource = 'kms.amazonaws.com' AND eventname IN ('DeleteImportedKeyMaterial', 'ImportKeyMaterial'))
  )
ORDER BY eventtime
