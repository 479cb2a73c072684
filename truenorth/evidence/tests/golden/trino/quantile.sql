WITH exposures AS (
  SELECT
    "unit_id" AS unit_id,
    MIN("variation") AS variation,
    MAX("variation") AS last_variation,
    MIN("first_exposure_at") AS exposed_at
  FROM "assignments" AS assignment_rows
  WHERE
    "experiment" = 'checkout''24'
  GROUP BY
    "unit_id"
), a AS (
  SELECT
    unit_id,
    CASE WHEN variation = last_variation THEN variation END AS variation,
    CASE WHEN variation = last_variation THEN 0 ELSE 1 END AS excluded,
    exposed_at,
    exposed_at + INTERVAL '7' DAY AS b0
  FROM exposures
), j AS (
  SELECT
    a.unit_id AS unit_id,
    a.variation AS variation,
    a.excluded AS excluded,
    e."value" AS value,
    e."name" IN ('purchase') AND e."at" >= a.exposed_at AS c0,
    e."name" IN ('purchase') AND e."at" >= a.exposed_at AND e."at" < a.b0 AS c1
  FROM a
  LEFT JOIN "events" AS e
    ON e."unit_id" = a.unit_id AND e."name" IN ('purchase')
)
SELECT
  CAST(variation AS VARCHAR) AS variation,
  CAST(APPROX_PERCENTILE(CASE WHEN c0 THEN value END, 0.5) AS DOUBLE) AS "order_p50__quantile",
  CAST(APPROX_PERCENTILE(CASE WHEN c0 AND variation = 'control' THEN value END, 0.4717103566480957) AS DOUBLE) AS "order_p50__lower__0",
  CAST(APPROX_PERCENTILE(CASE WHEN c0 AND variation = 'control' THEN value END, 0.5282896433519043) AS DOUBLE) AS "order_p50__upper__0",
  CAST(APPROX_PERCENTILE(CASE WHEN c0 AND variation = 'treatment' THEN value END, 0.47228192351300646) AS DOUBLE) AS "order_p50__lower__1",
  CAST(APPROX_PERCENTILE(CASE WHEN c0 AND variation = 'treatment' THEN value END, 0.5277180764869935) AS DOUBLE) AS "order_p50__upper__1",
  CAST(APPROX_PERCENTILE(CASE WHEN c1 THEN value END, 0.9) AS DOUBLE) AS "order_p90__quantile",
  CAST(APPROX_PERCENTILE(CASE WHEN c1 AND variation = 'control' THEN value END, 0.8804003601545994) AS DOUBLE) AS "order_p90__lower__0",
  CAST(APPROX_PERCENTILE(CASE WHEN c1 AND variation = 'control' THEN value END, 0.9195996398454006) AS DOUBLE) AS "order_p90__upper__0",
  CAST(APPROX_PERCENTILE(CASE WHEN c1 AND variation = 'treatment' THEN value END, 0.8809231114237681) AS DOUBLE) AS "order_p90__lower__1",
  CAST(APPROX_PERCENTILE(CASE WHEN c1 AND variation = 'treatment' THEN value END, 0.9190768885762319) AS DOUBLE) AS "order_p90__upper__1"
FROM j
WHERE
  excluded = 0
GROUP BY
  variation
ORDER BY
  variation
