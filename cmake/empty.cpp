// Placeholder translation unit for a module without sources yet.
