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
    e."value" AS value,
    e."name" IN ('purchase', 'subscribe') AND e."at" >= a.exposed_at AND e."at" < a.b0 AS c0
  FROM a
  LEFT JOIN "events" AS e
    ON e."unit_id" = a.unit_id AND e."name" IN ('purchase', 'subscribe')
), u AS (
  SELECT
    unit_id,
    CAST(MAX(CASE WHEN c0 THEN 1 ELSE 0 END) AS DOUBLE) AS q0
  FROM j
  GROUP BY
    unit_id
)
SELECT
  CAST(a.variation AS VARCHAR) AS variation,
  CAST(COUNT(*) AS DOUBLE) AS units,
  CAST(COUNT(q0) AS DOUBLE) AS "converted_7d__n",
  CAST(SUM(q0) AS DOUBLE) AS "converted_7d__sum",
  CAST(SUM(q0 * q0) AS DOUBLE) AS "converted_7d__sum_squares",
  CAST(a.excluded AS DOUBLE) AS "excluded"
FROM u
JOIN a
  ON a.unit_id = u.unit_id
GROUP BY
  a.variation,
  a.excluded
ORDER BY
  a.excluded,
  a.variation
