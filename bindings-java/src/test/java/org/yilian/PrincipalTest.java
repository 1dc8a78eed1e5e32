package org.yilian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** callAs: the host states who acts; a body naming another institution is refused and changes nothing. */
class PrincipalTest extends EngineFixture {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String C001 = "{\"role\":\"community\",\"institution_id\":\"C001\",\"operator\":\"王护士\"}";
    static final String C002 = "{\"role\":\"community\",\"institution_id\":\"C002\"}";

    PrincipalTest() {
        super(2);
    }

    @Test
    void anInstitutionActsOnlyForItself() throws Exception {
        String req = "{\"patient_id\":\"PAT001\",\"slot_id\":\"" + TestSupport.SLOT_0900 + "\"}";
        JsonNode held = JSON.readTree(engine.callAs(C001, "pre-book-slot", req));
        assertEquals("C001", held.get("clinic_id").asText());
        String id = held.get("booking_id").asText();
        YilianPermissionException e = assertThrows(YilianPermissionException.class,
                () -> engine.callAs(C002, "cancel-slot", "{\"booking_id\":\"" + id + "\",\"institution_id\":\"C001\"}"));
        assertEquals("FORBIDDEN", e.getCode());
        assertTrue(e.getMessageZh().contains("本机构"), e.getMessageZh());
        assertThrows(YilianPermissionException.class, () -> engine.callAs(C002, "cancel-slot", "{\"booking_id\":\"" + id + "\"}"));
        assertEquals("pre-booked", JSON.readTree(engine.call("booking-info", "{\"booking_id\":\"" + id + "\"}")).get("status").asText());
        assertThrows(YilianInputException.class, () -> engine.callAs("{\"role\":\"community\"}", "engine-info", "{}"));
        assertThrows(NullPointerException.class, () -> engine.callAs(null, "engine-info", "{}"));
        assertEquals("cancelled", JSON.readTree(engine.callAs(C001, "cancel-slot", "{\"booking_id\":\"" + id + "\"}")).get("status").asText());
    }
}
