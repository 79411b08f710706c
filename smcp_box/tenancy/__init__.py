"""Tenants: their manifests, the registry the transport looks them up in, and the runtime that
joins a tenant's sandboxed module to its share of the store."""
