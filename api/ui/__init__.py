"""The review desk: web pages served by ``medkg serve`` under ``/ui/`` (queue, claim, patient), and the few
JSON calls of their own under ``/v1`` (``api.ui.review_api``). See ``api.ui.routes``."""
