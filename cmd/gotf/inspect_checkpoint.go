package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/gotf/gotf/savedmodel"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// checkpointInfo is what inspect shows of a checkpoint.
type checkpointInfo struct {
	Format string `json:"format"`
	Prefix string `json:"prefix"`
	// Variables are tf.train.list_variables' names and shapes, with dtypes.
	Variables []variableInfo `json:"variables"`
	// Objects is the object graph of a tf.train.Checkpoint, nil for a
	// name-based (TF1 Saver) checkpoint.
	Objects []objectInfo `json:"objects,omitempty"`
}

type variableInfo struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

// objectInfo is a node of the TrackableObjectGraph; node 0 is the root.
type objectInfo struct {
	ID         int              `json:"id"`
	Children   []objectChild    `json:"children,omitempty"`
	Attributes []objectAttr     `json:"attributes,omitempty"`
	Slots      []objectSlotInfo `json:"slot_variables,omitempty"`
}

type objectChild struct {
	Name string `json:"name"`
	ID   int    `json:"id"`
}

type objectAttr struct {
	Name          string `json:"name"`
	CheckpointKey string `json:"checkpoint_key"`
}

type objectSlotInfo struct {
	Slot     string `json:"slot"`
	Variable int    `json:"variable_id"`
	SlotID   int    `json:"slot_id"`
}

func readCheckpointInfo(prefix string) (*checkpointInfo, error) {
	r, err := savedmodel.OpenBundle(prefix)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	info := &checkpointInfo{Format: fmtCheckpoint, Prefix: prefix, Variables: []variableInfo{}}
	for _, name := range r.Names() {
		e, err := r.Entry(name)
		if err != nil {
			return nil, err
		}
		shape := e.Shape
		if shape == nil {
			shape = []int64{}
		}
		info.Variables = append(info.Variables, variableInfo{Name: name, DType: e.DType.String(), Shape: shape})
	}
	if !r.Has(savedmodel.ObjectGraphKey) {
		return info, nil
	}
	raw, err := r.ObjectGraph()
	if err != nil {
		return nil, err
	}
	var og cpb.TrackableObjectGraph
	if err := proto.Unmarshal(raw, &og); err != nil {
		return nil, fmt.Errorf("%s: the object graph (%s) does not parse: %w", prefix, savedmodel.ObjectGraphKey, err)
	}
	for i, n := range og.GetNodes() {
		o := objectInfo{ID: i}
		for _, c := range n.GetChildren() {
			o.Children = append(o.Children, objectChild{Name: c.GetLocalName(), ID: int(c.GetNodeId())})
		}
		for _, a := range n.GetAttributes() {
			o.Attributes = append(o.Attributes, objectAttr{Name: a.GetName(), CheckpointKey: a.GetCheckpointKey()})
		}
		for _, s := range n.GetSlotVariables() {
			o.Slots = append(o.Slots, objectSlotInfo{Slot: s.GetSlotName(), Variable: int(s.GetOriginalVariableNodeId()), SlotID: int(s.GetSlotVariableNodeId())})
		}
		info.Objects = append(info.Objects, o)
	}
	return info, nil
}

func (c *checkpointInfo) writeText(w io.Writer) {
	fmt.Fprintf(w, "Checkpoint %s: %d variables (tf.train.list_variables)\n", c.Prefix, len(c.Variables))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range c.Variables {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, v.DType, pyList(v.Shape))
	}
	tw.Flush()
	if c.Objects == nil {
		return
	}
	fmt.Fprintf(w, "\nObject graph (%d objects):\n", len(c.Objects))
	c.writeObject(w, 0, "(root)", "(root)", 1, map[int]string{})
}

// writeObject prints the object graph as a tree from node id; an object
// reachable by several paths (a layer tracked by the model and a list) is
// expanded at its first path and referred to by it afterwards, which also
// ends cycles.
func (c *checkpointInfo) writeObject(w io.Writer, id int, name, path string, depth int, seen map[int]string) {
	ind := strings.Repeat("  ", depth)
	if id < 0 || id >= len(c.Objects) {
		fmt.Fprintf(w, "%s%s -> node %d (out of range)\n", ind, name, id)
		return
	}
	if first, ok := seen[id]; ok {
		fmt.Fprintf(w, "%s%s = %s\n", ind, name, first)
		return
	}
	seen[id] = path
	o := c.Objects[id]
	fmt.Fprintf(w, "%s%s\n", ind, name)
	for _, a := range o.Attributes {
		fmt.Fprintf(w, "%s  .%s: %s\n", ind, a.Name, a.CheckpointKey)
	}
	for _, s := range o.Slots {
		fmt.Fprintf(w, "%s  slot %q of node %d: node %d\n", ind, s.Slot, s.Variable, s.SlotID)
	}
	for _, ch := range o.Children {
		p := ch.Name
		if id != 0 {
			p = path + "/" + ch.Name
		}
		c.writeObject(w, ch.ID, ch.Name, p, depth+1, seen)
	}
}

// pyList formats a shape as tf.train.list_variables does: [3, 2], [].
func pyList(dims []int64) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
