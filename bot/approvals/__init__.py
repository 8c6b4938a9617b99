"""The two-person rule: requests for risky actions, approval by someone else, one execution, audit."""
