"""The one job system: every training and evaluation job, however it was started (a tab, the API, the command line).

    status.py     JobStatus: the one set of states (and the stages a training process writes, mapped onto it)
    store.py      the queue database: every change of a job's row
    files.py      the job folder of a training job: its config, status.json, curves, log and checkpoints
    progress.py   JobProgress: the one reader of a job folder for the tabs and the CLI (bounded, incremental)
    process.py    job processes: the owner lock (liveness, one trainer per job), spawning and stopping
    worker.py     the body of a training job (`python -m jobs.worker`, or `python -m finetune train` in the
                  foreground): runs finetune.train with a reporter that writes the job folder
    scheduler.py  JobQueue: the line, max_running at a time, Cancel and Resume with the roles policy
    runners.py    what each kind of job does (train, evaluate); app.py wires them in (ui.context.with_services)
    cli.py        the job commands of `python -m finetune` (train as a registered job, jobs, stop, compare)

Layering: ui/ and the CLIs' entry points (`__main__.py`) use this package; no other module of finetune/, evaluation/
or chat/ imports it (they get a config and a reporter). Nothing here imports gradio.
"""
