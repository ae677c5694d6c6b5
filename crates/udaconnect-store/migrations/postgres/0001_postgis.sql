-- Coordinates are PostGIS points; distances are measured on geography (metres on the sphere).
CREATE EXTENSION IF NOT EXISTS postgis;
-- B-tree operator classes for GiST, so one GiST index holds a ping's place and time together
-- (see 0004_location_indexes.sql). A trusted extension: a database owner may create it.
CREATE EXTENSION IF NOT EXISTS btree_gist;
