"""The Slack adapters: middleware, error path, membership, sink, HTTP edge, grammar, answers.

Below `handlers/` and above the flows; it never imports the handlers (only the composition root
does) and never the worker.
"""
