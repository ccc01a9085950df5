module github.com/gotf/gotf

go 1.24

require (
	github.com/stretchr/testify v1.12.1 // indirect
	github.com/wamuir/graft v0.7.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
