module smcp-box.example/tasks

go 1.24
