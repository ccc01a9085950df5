module github.com/gotf/gotf

go 1.24

require (
	github.com/golang/snappy v1.0.0
	github.com/stretchr/testify v1.12.1
	github.com/wamuir/graft v0.7.0
	golang.org/x/sys v0.35.0
	google.golang.org/protobuf v1.36.12
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
