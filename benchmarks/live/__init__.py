"""The benchmarks that run the live controller: the load benchmark (``python -m benchmarks.live.load_bench``) and
a scenario through the controller with emulated chargers (``scenario_live``; ``depotctl bench --live``). The only
part of ``benchmarks`` that imports ``csms_adapter``; the rest of ``benchmarks`` imports this package only lazily,
when a live mode is asked for."""
