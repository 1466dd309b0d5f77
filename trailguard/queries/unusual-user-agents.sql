-- name: unusual-user-agents
-- title: Activity from unusual user agents
-- description: Calls from penetration-testing distributions (Kali, Parrot, Pentoo), offensive tools (Pacu, ScoutSuite, Prowler, CloudMapper, Stratus) or clients that are no AWS SDK, CLI, console or service.
-- param start timestamp = 1970-01-01: Window start, inclusive (ISO-8601 UTC, e.g. 2024-05-01T00:00:00Z).
-- param end timestamp = 9999-12-31: Window end, exclusive (ISO-8601 UTC).
SELECT
  CASE
    WHEN regexp_like(lower(useragent), 'kali|parrot|pentoo|pacu|scoutsuite|cloudmapper|stratus-red-team|cloudfox|trufflehog')
      THEN 'offensive-tooling'
    ELSE 'non-sdk-client'
  END AS reason,
  useragent,
  coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid) AS principal,
  count(*) AS calls,
  count(DISTINCT eventname) AS distinct_actions,
  min(eventtime) AS first_seen,
  max(eventtime) AS last_seen,
  arbitrary(sourceipaddress) AS a_source_ip
FROM cloudtrail
WHERE "date" >= substr(replace({{start}}, '-', '/'), 1, 10)
  AND eventtime >= {{start}}
  AND eventtime < {{end}}
  AND useragent IS NOT NULL
  AND (
    regexp_like(lower(useragent), 'kali|parrot|pentoo|pacu|scoutsuite|cloudmapper|stratus-red-team|cloudfox|trufflehog')
    OR NOT regexp_like(
      lower(useragent),
      '^\[?(aws-cli|aws-sdk|boto3|botocore|aws-internal|aws internal|apn/|terraform|hashicorp|cloudformation|console|signin|'
      || 'mozilla|aws-cdk|s3fs|aws-powertools|aws-lambda|coral|elasticmapreduce|arsenal|awslambda)|amazonaws\.com$'
    )
  )
GROUP BY 1, 2, 3
ORDER BY reason DESC, calls DESC
