WITH exposures AS (
  SELECT
    `unit_id` AS unit_id,
    MIN(`variation`) AS variation,
    MAX(`variation`) AS last_variation,
    MIN(`first_exposure_at`) AS exposed_at
  FROM `assignments` AS assignment_rows
  WHERE
    `experiment` = 'checkout\'24'
  GROUP BY
    `unit_id`
), a AS (
  SELECT
    unit_id,
    CASE WHEN variation = last_variation THEN variation END AS variation,
    CASE WHEN variation = last_variation THEN 0 ELSE 1 END AS excluded,
    exposed_at,
    CASE
      WHEN exposed_at >= CAST('2026-01-05 00:00:00' AS TIMESTAMP)
      AND exposed_at < CAST('2026-01-12 00:00:00' AS TIMESTAMP)
      THEN 1
      ELSE 0
    END AS b0,
    exposed_at + INTERVAL '24' HOUR AS b1,
    exposed_at + INTERVAL '7' DAY AS b2,
    exposed_at + INTERVAL '1' DAY AS b3
  FROM exposures
), j AS (
  SELECT
    a.unit_id AS unit_id,
    a.b0 AS b0,
    e.`value` AS value,
    e.`name` IN ('purchase') AND e.`at` >= a.b1 AND e.`at` < a.b2 AS c0,
    e.`name` IN ('page_view') AND e.`at` >= a.exposed_at AND e.`at` < a.b3 AS c1
  FROM a
  LEFT JOIN `events` AS e
    ON e.`unit_id` = a.unit_id AND e.`name` IN ('page_view', 'purchase')
), u AS (
  SELECT
    unit_id,
    CAST(CASE WHEN MAX(b0) = 1 THEN COALESCE(SUM(CASE WHEN c0 THEN value END), 0) END AS FLOAT64) AS q0,
    CAST(COUNT(CASE WHEN c1 THEN 1 END) AS FLOAT64) AS q1
  FROM j
  GROUP BY
    unit_id
)
SELECT
  CAST(a.variation AS STRING) AS variation,
  CAST(COUNT(*) AS FLOAT64) AS units,
  CAST(COUNT(q0) AS FLOAT64) AS `late_revenue__n`,
  CAST(SUM(q0) AS FLOAT64) AS `late_revenue__sum`,
  CAST(SUM(q0 * q0) AS FLOAT64) AS `late_revenue__sum_squares`,
  CAST(COUNT(q1) AS FLOAT64) AS `early_views__n`,
  CAST(SUM(q1) AS FLOAT64) AS `early_views__sum`,
  CAST(SUM(q1 * q1) AS FLOAT64) AS `early_views__sum_squares`,
  CAST(a.excluded AS FLOAT64) AS `excluded`
FROM u
JOIN a
  ON a.unit_id = u.unit_id
GROUP BY
  a.variation,
  a.excluded
ORDER BY
  a.excluded NULLS LAST,
  a.variation NULLS LAST
