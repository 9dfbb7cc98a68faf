"""Server-side git hooks: ref policy and the deploy that runs during a push."""
