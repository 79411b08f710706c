module smcp-box.sdk/go

go 1.24
