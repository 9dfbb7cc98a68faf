"""The HTTP side: git smart-HTTP remote, webhooks and the API, in one starlette app."""
