"""Why this? Evidence, the template explainer, LLM backends, the guard and the explanation cache."""
