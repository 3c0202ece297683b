"""dpc-elt: the logic behind the dpc_elt DAG (DPC monthly ELT), importable without a running Airflow."""
