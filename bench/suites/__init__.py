"""The suite's parts, each a function ``run(ctx) -> dict`` returning its JSON results."""
