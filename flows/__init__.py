"""Prefect flows: thin wrappers over ``mvsd`` functions that add retries, caching, schedules,
artifacts and logs. Each is a script: ``python -m flows.<name> --help``.

    flows.ingest            a source folder -> shards + manifest
    flows.train_round       one training round (both converters) on Ray
    flows.pseudo_pairs      pseudo-pairs from the unpaired pools with a round's converters
    flows.mutual_learning   round 0, then N x (pseudo-pairs -> train), then evaluation
    flows.evaluate          metrics + listening report + a Prefect artifact
    flows.inbox             new unpaired files -> new dataset version -> next round (scheduled)
    flows.serve             serve the inbox flow on its cron schedule against a Prefect server
"""
