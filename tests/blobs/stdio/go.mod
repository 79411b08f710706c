module smcp-box.test/stdioblobs

go 1.24

require smcp-box.sdk/go v0.0.0

replace smcp-box.sdk/go => ../../../sdk/go
