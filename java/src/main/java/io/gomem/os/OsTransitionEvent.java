package io.gomem.os;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/** JFR event: one OS-layer transition (or refusal) of a range, as the debug line shows it. */
@Name("io.gomem.OsTransition")
@Label("gomem OS Transition")
@Category({"gomem", "OS"})
@Description("A region of address space changing state (sysReserve, sysMap, sysUsed, sysUnused, sysFault, sysFree, huge-page advice)")
@StackTrace(false)
final class OsTransitionEvent extends Event {
    @Label("Call")
    String call;
    @Label("Address")
    long address;
    @Label("Length")
    @DataAmount
    long length;
    @Label("Purpose")
    String purpose;
    @Label("From")
    String from;
    @Label("To")
    String to;
    @Label("Result")
    String result;
}
