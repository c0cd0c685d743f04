"""Archive mode: batch walk and plan, the SQLite store, execution engines, the report."""
