"""Benchmarks of the whole stack: `make bench`, or `python -m bench [--quick] [--only B0,B1]` from the
repository's top folder (BENCHMARKS.md). They are not part of the installed package nor of the image.

    __main__.py    the command: the plan, the stack, the benchmarks in turn, the table and the JSON
    plan.py        how much a full and a quick run do, and the branch file the stack runs on
    driver.py      the hold on a running stack: tokens, load processes spawned and collected, waiting for
                   the workers, the hello-world server, memory and CPU
    clients.py     the load generators: HTTP/1.1 and Server-Sent Events over raw asyncio sockets
    latency.py     B0 Redis alone, B1 press to device, B2 pause to display
    throughput.py  B3 ticket issuing beside hello-world (hello.py)
    fanout.py      B4 many live screens and devices, with B5 timer lateness
    footprint.py   B6 Redis bytes per ticket and per page
    estimates.py   B7 wait estimates against the best knowable on simulated days, and the simulator's speed
    records.py     B8 archiving a day of many branches into PostgreSQL, 12 months of trends, Redis's window
    figures.py     latencies in ms, nearest-rank percentiles
    report.py      the table, the targets met, the JSON document
    machine.py     the machine, and each process's memory and CPU from /proc
"""
