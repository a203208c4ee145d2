-- Up Migration
-- Database-wide helpers shared by every service's schema.

-- Keeps updated_at current on UPDATE; services attach it to their tables.
CREATE OR REPLACE FUNCTION kvary_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := clock_timestamp();
  RETURN NEW;
END;
$$;

-- Down Migration
DROP FUNCTION IF EXISTS kvary_touch_updated_at();
