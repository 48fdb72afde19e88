"""ProfileService: identity resolution, encrypted profiles, crypto-shredding erasure, audit."""
