"""What an operator watches: traces (``tracing``), fed from the request's outcome and the
hooks in ``core.spans``. No HTTP ingress here; the server calls in."""
