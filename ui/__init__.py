"""The browser chat UI (Streamlit), a thin HTTP client of the API."""
