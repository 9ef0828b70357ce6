"""Live load benchmark of the OCPP controller (``python -m benchmarks.live.load_bench``). The only part of
``benchmarks`` that imports ``csms_adapter``; nothing else imports this package."""
