"""airspeed velocity benchmarks for Cartridge (see ``../asv.conf.json``)."""
