"""What people ask for, whatever the surface (Slack, CLI, rehearsal): one module per flow.

`planning` reads the clusters and posts plans; `approvals` counts approvals, rejections and
withdrawals; `controls` pauses, resumes, aborts, retries and approves overruns; `queries` reads
runs. Each public method is one unit of work; cluster reads happen only in planning; everything
that changes a cluster is left to the worker. `bot.services.Services` is the facade over them.
"""
