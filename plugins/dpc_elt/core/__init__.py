"""What every layer above may use: settings, the data contract (layouts, manifest, raw file checks),
parameters, errors, SQL files and table allow-lists. No Airflow, no warehouse."""
