$CLI verify /nonexistent/snap.ds
