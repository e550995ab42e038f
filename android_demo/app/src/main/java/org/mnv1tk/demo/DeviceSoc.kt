package org.mnv1tk.demo

import android.os.Build

/** The phone's SoC as the bundle names it ("sm8650"), to pick a model compiled ahead of time for its NPU. */
object DeviceSoc {
    val name: String
        get() = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) Build.SOC_MODEL.lowercase() else Build.HARDWARE.lowercase()
}
