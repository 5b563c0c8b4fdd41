"""Suppliers of physical goods (实物) and their catalogue; supplier accounts see only their own goods orders."""
