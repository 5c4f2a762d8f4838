"""The run lifecycle: domain code below both the flows (what people ask) and the worker.

`transitions` moves runs and steps through the transition table and audits each move;
`outcomes` stores what a worker's visit decided; `posting` queues the thread replies and the
status board; `waiting` starts, schedules or expires waiting runs and asks for overruns;
`views` are the read models people see. Everything runs inside the caller's unit of work.
"""
