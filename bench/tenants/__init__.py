"""The benchmark's tenant modules, built from source by the suite."""
