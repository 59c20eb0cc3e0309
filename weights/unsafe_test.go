package weights

import "unsafe"

func uintptrOf(b []byte) uintptr       { return uintptr(unsafe.Pointer(&b[0])) }
func uintptrOfF32(v []float32) uintptr { return uintptr(unsafe.Pointer(&v[0])) }
