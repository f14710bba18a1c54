"""The product API: JSON under /api/v1 and share links under /share, served by the gateway.

Routes are in gateway/api/routes.py; the contract is docs/internals.md "The product API".
"""
