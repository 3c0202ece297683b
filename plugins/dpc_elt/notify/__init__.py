"""Notices of runs and maintenance: one message (:mod:`.message`), every channel (:mod:`.channels`)."""

from dpc_elt.notify.channels import deliver
from dpc_elt.notify.message import FAILURE_XCOM_KEY, Message, describe_failure, record_failure

__all__ = ["FAILURE_XCOM_KEY", "Message", "deliver", "describe_failure", "record_failure"]
