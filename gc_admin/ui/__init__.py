"""The dashboard shell: auth state, layout (sidebar + top bar), shared components."""
